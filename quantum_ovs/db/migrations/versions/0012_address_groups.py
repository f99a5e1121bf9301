"""address groups (address-group, security-groups-remote-address-group)

address_groups (standard attributes), their CIDRs in address_associations,
and securitygrouprules.remote_address_group_id.

Revision ID: 0012_address_groups
Revises: 0011_rbac
Create Date: 2026-12-04 22:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_address_groups'
down_revision = '0011_rbac'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('address_groups',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('address_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_groups_project_id'), ['project_id'],
                              unique=False)
    op.create_table('address_associations',
    sa.Column('address_group_id', sa.String(length=36), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['address_group_id'], ['address_groups.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('address_group_id', 'address')
    )
    with op.batch_alter_table('securitygrouprules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('remote_address_group_id', sa.String(length=36),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_securitygrouprules_remote_address_group_id'),
                              ['remote_address_group_id'], unique=False)
        batch_op.create_foreign_key('fk_securitygrouprules_remote_address_group_id',
                                    'address_groups', ['remote_address_group_id'], ['id'])


def downgrade():
    with op.batch_alter_table('securitygrouprules', schema=None) as batch_op:
        batch_op.drop_constraint('fk_securitygrouprules_remote_address_group_id',
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_securitygrouprules_remote_address_group_id'))
        batch_op.drop_column('remote_address_group_id')
    op.drop_table('address_associations')
    with op.batch_alter_table('address_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_groups_project_id'))
    op.drop_table('address_groups')
